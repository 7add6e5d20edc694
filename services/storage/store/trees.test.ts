import { describe, expect, it } from 'vitest';
import { applyChanges, diffTrees, type TreeEntry, type TreeIO } from './trees.ts';
import { NotFoundError, PathConflictError } from './errors.ts';

/** In-memory trees, content-addressed by their JSON: no file system. */
function memory(): TreeIO & { reads: string[]; writes: number } {
  const trees = new Map<string, TreeEntry[]>();
  const io = {
    reads: [] as string[],
    writes: 0,
    async readTree(oid: string) {
      io.reads.push(oid);
      return trees.get(oid)!;
    },
    async writeTree(entries: TreeEntry[]) {
      io.writes++;
      const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : 1));
      const oid = `t${JSON.stringify(sorted)}`;
      trees.set(oid, sorted);
      return oid;
    },
  };
  return io;
}

const seg = (p: string) => p.split('/');

describe('trees', () => {
  it('rewrites only the trees along the changed path', async () => {
    const io = memory();
    const r1 = await applyChanges(io, undefined, [
      { segs: seg('a/x'), blob: 'b1' },
      { segs: seg('b/deep/y'), blob: 'b2' },
    ]);
    io.reads.length = 0;
    io.writes = 0;
    const r2 = await applyChanges(io, r1, [{ segs: seg('a/x'), blob: 'b3' }]);
    expect(io.writes).toBe(2); // a/ and the root; b/ is untouched
    expect(io.reads).toHaveLength(2);
    expect(await diffTrees(io, r1, r2)).toEqual([{ path: 'a/x', type: 'modify', blob: 'b3' }]);
  });

  it('removes folders left empty, and diffs file↔folder switches', async () => {
    const io = memory();
    const r1 = await applyChanges(io, undefined, [{ segs: seg('a/b/c'), blob: 'x' }, { segs: seg('k'), blob: 'y' }]);
    const r2 = await applyChanges(io, r1, [{ segs: seg('a/b/c'), blob: null }]);
    expect(await io.readTree(r2)).toEqual([{ mode: '100644', path: 'k', oid: 'y', type: 'blob' }]);
    const r3 = await applyChanges(io, r2, [{ segs: seg('k'), blob: null }, { segs: seg('a'), blob: 'z' }]);
    const r4 = await applyChanges(io, r3, [{ segs: seg('a'), blob: null }, { segs: seg('k/a'), blob: 'w' }]);
    expect(await diffTrees(io, r3, r4)).toEqual([
      { path: 'a', type: 'delete', blob: 'z' },
      { path: 'k/a', type: 'add', blob: 'w' },
    ]);
    // Everything deleted: the empty tree.
    const empty = await applyChanges(io, r4, [{ segs: seg('k/a'), blob: null }]);
    expect(await io.readTree(empty)).toEqual([]);
  });

  it('refuses clashes and deleting what is not there', async () => {
    const io = memory();
    const r = await applyChanges(io, undefined, [{ segs: seg('f'), blob: '1' }, { segs: seg('d/g'), blob: '2' }]);
    await expect(applyChanges(io, r, [{ segs: seg('f/x'), blob: '3' }])).rejects.toBeInstanceOf(PathConflictError);
    await expect(applyChanges(io, r, [{ segs: seg('d'), blob: '3' }])).rejects.toBeInstanceOf(PathConflictError);
    await expect(applyChanges(io, r, [{ segs: seg('nope'), blob: null }])).rejects.toBeInstanceOf(NotFoundError);
    await expect(applyChanges(io, r, [{ segs: seg('d/g/h'), blob: null }])).rejects.toBeInstanceOf(PathConflictError);
  });
});
