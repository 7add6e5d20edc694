/** storage/storage.yaml: which repositories exist and what they allow. */
import { z } from 'zod';
import { loadYamlFile } from '../../../platform/config/yaml.ts';
import type { ConfigSpec } from '../../../platform/config/spec.ts';
import { isValidRepoName, REPO_NAME_RULE } from '../repo-name.ts';

/** The same rule as git URLs, the store API and `kith repo create` (repo-name.ts). */
const RepoName = z.string().refine(isValidRepoName, REPO_NAME_RULE);

export const StorageConfigSchema = z.object({
  /** A push to a repository that does not exist creates it. */
  createOnPush: z.boolean().default(false),
  /** Repositories where a non-fast-forward push (git push --force) is allowed. */
  allowNonFastForward: z.array(RepoName).default([]),
  /** Refuse pushes that would grow a repository past this size. */
  maxRepoBytes: z.number().int().positive().default(256 << 20),
  /** Largest request body accepted (a pushed pack, a stored file). */
  maxPushBytes: z.number().int().positive().default(64 << 20),
  /** Largest object in a push, inflated (a file, or what a delta builds). */
  maxObjectBytes: z.number().int().positive().default(100 << 20),
  /** All objects of one push together, inflated. */
  maxPushInflatedBytes: z.number().int().positive().default(1 << 30),
}).strict();

export type StorageConfig = z.infer<typeof StorageConfigSchema>;

export const DEFAULT_STORAGE_YAML = `# kith storage: git over HTTP, and the versioned store other services keep data in.
# Changes here apply live after a push to config.git.

# A push to a repository that does not exist yet creates it.
createOnPush: false

# Repositories where \`git push --force\` is allowed (config.git never should be).
allowNonFastForward: []

# Size limits, in bytes: a repository on disk, a push as sent, the largest object
# in a push once inflated, and everything in one push once inflated.
maxRepoBytes: 268435456
maxPushBytes: 67108864
maxObjectBytes: 104857600
maxPushInflatedBytes: 1073741824
`;

export const storageConfig: ConfigSpec<StorageConfig> = {
  defaults: { 'storage/storage.yaml': DEFAULT_STORAGE_YAML },
  load: (src) => loadYamlFile(src, 'storage/storage.yaml', StorageConfigSchema),
};
