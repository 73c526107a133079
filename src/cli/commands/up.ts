import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'up',
  summary: '(not implemented yet)',
  usage: 'podrun up',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "up": not implemented yet');
  },
};
export default command;
