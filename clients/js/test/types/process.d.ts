// The one Node global the seed snippet uses (no @types/node needed).
declare const process: { env: Record<string, string | undefined> };
