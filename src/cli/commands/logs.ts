import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'logs',
  summary: '(not implemented yet)',
  usage: 'podrun logs',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "logs": not implemented yet');
  },
};
export default command;
