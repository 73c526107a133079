import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'wait',
  summary: '(not implemented yet)',
  usage: 'podrun wait',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "wait": not implemented yet');
  },
};
export default command;
