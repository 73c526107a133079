import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'pull',
  summary: '(not implemented yet)',
  usage: 'podrun pull',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "pull": not implemented yet');
  },
};
export default command;
