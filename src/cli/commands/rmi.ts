import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'rmi',
  summary: '(not implemented yet)',
  usage: 'podrun rmi',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "rmi": not implemented yet');
  },
};
export default command;
