/** Entry of `/kith/pki.cjs` on the appliance (appliance-pki.ts): run, or log why not and exit 1. */
import { log, main } from './appliance-pki.ts';

main().catch((err: Error) => {
  log('error', 'pki failed', { error: err.message });
  process.exit(1);
});
