import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'ps',
  summary: '(not implemented yet)',
  usage: 'podrun ps',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "ps": not implemented yet');
  },
};
export default command;
