import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'status',
  summary: '(not implemented yet)',
  usage: 'podrun status',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "status": not implemented yet');
  },
};
export default command;
