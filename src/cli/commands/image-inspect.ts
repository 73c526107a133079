import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'image inspect',
  summary: '(not implemented yet)',
  usage: 'podrun image inspect',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "image inspect": not implemented yet');
  },
};
export default command;
