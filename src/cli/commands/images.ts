import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'images',
  summary: '(not implemented yet)',
  usage: 'podrun images',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "images": not implemented yet');
  },
};
export default command;
