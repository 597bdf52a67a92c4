// POST /api/generate: hands the slow AI call to AsyncQueue and answers at once.
// This is the seed snippet; only the target's address is read from
// AI_SERVICE_URL here, so the example can point at a service of your own.
import { AsyncQueue } from 'asyncqueue-js';

const AI_SERVICE_URL = process.env.AI_SERVICE_URL ?? 'https://ai-service.example.com/generate';

export async function POST(request) {
  const data = await request.json();
  const aq = new AsyncQueue({ apiKey: process.env.ASYNCQUEUE_API_KEY });
  const task = await aq.tasks.create({
    callbackUrl: AI_SERVICE_URL,
    payload: data,
    webhookUrl: `${process.env.VERCEL_URL}/api/on-complete`,
    retries: 3,
  });
  return Response.json({ taskId: task.id, status: 'processing' });
}
