// POST /api/on-complete: AsyncQueue delivers the outcome here, signed
// (Standard Webhooks). webhookHandler verifies the signature against
// ASYNCQUEUE_WEBHOOK_SECRET (401 if it does not match), then calls onEvent;
// if onEvent throws, it answers 500 and AsyncQueue delivers again later.
//
// GET /api/on-complete?taskId=...: what was saved for a task (404 until then).
import { webhookHandler } from 'asyncqueue-js/next';
import { saveResult, getResult } from '../../../lib/results.js';

export const POST = webhookHandler({
  onEvent: async (event, { webhookId }) => {
    // event: { taskId, status: 'completed' | 'failed' | 'cancelled', result,
    //          response, attempts, error, metadata, createdAt, finishedAt }
    await saveResult(event, webhookId);
  },
});

export async function GET(request) {
  const taskId = new URL(request.url).searchParams.get('taskId');
  const saved = taskId ? await getResult(taskId) : null;
  if (!saved) return Response.json({ error: 'no result for this task yet' }, { status: 404 });
  return Response.json(saved);
}
