/**
 * A real small filesystem to fill up (tmpfs): the disk-full tests run against a real ENOSPC, not
 * a mocked one. Mounting needs root and no seccomp refusal; `canMount` says whether this machine
 * lets us (the tests skip where it does not).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';

export interface Tmpfs {
  /** The mount point. */
  readonly path: string;
  /** Whether a tmpfs could be mounted here at all (tried once, at creation). */
  readonly canMount: boolean;
  /** Mounts a tmpfs of `size` (`96k`, `1m`) at `path`; false when refused. */
  mount(size: string): boolean;
  /** Unmounts it if mounted and removes the mount point (the tests call it after each). */
  unmount(): void;
}

export function tmpfs(path: string): Tmpfs {
  let mounted = false;
  const fs = {
    path,
    canMount: false,
    mount(size: string): boolean {
      try {
        mkdirSync(path, { recursive: true });
        execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', path], { stdio: 'ignore' });
        mounted = true;
      } catch {
        mounted = false;
        rmSync(path, { recursive: true, force: true });
      }
      return mounted;
    },
    unmount(): void {
      if (mounted) execFileSync('umount', [path]);
      mounted = false;
      rmSync(path, { recursive: true, force: true });
    },
  };
  fs.canMount = fs.mount('64k');
  fs.unmount();
  return fs;
}
