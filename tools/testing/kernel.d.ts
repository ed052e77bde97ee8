export function cgroup2Root(): string;
export function tempCgroup(): { path: string } & Disposable;
export function tempBpffs(): { path: string } & Disposable;
