import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'supervisor',
  summary: '(not implemented yet)',
  usage: 'podrun supervisor',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "supervisor": not implemented yet');
  },
};
export default command;
