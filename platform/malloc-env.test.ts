import { describe, expect, it } from 'vitest';
import { SERVICE_MALLOC_ENV, withServiceMalloc } from './malloc-env.ts';

describe('service malloc environment', () => {
  it('puts the malloc settings under the given environment; the environment wins', () => {
    expect(withServiceMalloc({ PATH: '/bin' })).toEqual({ ...SERVICE_MALLOC_ENV, PATH: '/bin' });
    expect(withServiceMalloc({ MALLOC_ARENA_MAX: '1' }).MALLOC_ARENA_MAX).toBe('1');
  });

  it('an empty value unsets the variable: glibc keeps its own default', () => {
    const env = withServiceMalloc({ PATH: '/bin', MALLOC_MMAP_THRESHOLD_: '' });
    expect('MALLOC_MMAP_THRESHOLD_' in env).toBe(false);
    expect(env.MALLOC_ARENA_MAX).toBe(SERVICE_MALLOC_ENV.MALLOC_ARENA_MAX);
  });
});
