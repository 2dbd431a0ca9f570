/** Resolves after `ms`: backoff between retries and injected delays. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
