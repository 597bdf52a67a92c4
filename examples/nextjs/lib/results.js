// Where results are kept: in memory, for the example. Put your database here
// (a serverless function's memory lasts only as long as its instance).
//
// AsyncQueue may deliver one outcome more than once (a retry after a lost
// answer carries the same webhook-id), so saving is keyed and idempotent.
const store = (globalThis.__asyncqueueExampleResults ??= new Map());

export async function saveResult(event, webhookId) {
  const previous = store.get(event.taskId);
  store.set(event.taskId, {
    taskId: event.taskId,
    status: event.status,
    result: event.result,
    error: event.error,
    finishedAt: event.finishedAt,
    webhookId,
    deliveries: previous?.webhookId === webhookId ? previous.deliveries + 1 : 1,
  });
}

export async function getResult(taskId) {
  return store.get(taskId) ?? null;
}
