/**
 * The storage service's config spec (storage/storage.yaml), default-exported by the
 * convention every service follows (platform/config/registry.ts).
 */
import { storageConfig } from './config/schema.ts';

export default storageConfig;
