import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'image unpack',
  summary: '(not implemented yet)',
  usage: 'podrun image unpack',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "image unpack": not implemented yet');
  },
};
export default command;
