import type { Command } from '../command.js';
import { PodrunError } from '../../util/errors.js';

// Placeholder until the verb is implemented.
const command: Command = {
  name: 'doctor',
  summary: '(not implemented yet)',
  usage: 'podrun doctor',
  async run() {
    throw new PodrunError('EUNSUPPORTED', 'Cannot run "doctor": not implemented yet');
  },
};
export default command;
