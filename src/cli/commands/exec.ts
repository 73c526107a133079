import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'exec',
  summary: '(not implemented yet)',
  usage: 'podrun exec',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "exec": not implemented yet');
  },
};
export default command;
