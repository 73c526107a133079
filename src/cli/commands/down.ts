import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'down',
  summary: '(not implemented yet)',
  usage: 'podrun down',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "down": not implemented yet');
  },
};
export default command;
