import { z } from 'zod';

/** `handler:` in the config; the union grows with each handler type. */
export const handlerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('echo') }).strict(),
]);

export type HandlerConfig = z.infer<typeof handlerSchema>;
