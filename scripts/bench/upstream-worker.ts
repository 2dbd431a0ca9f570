// The benchmark's upstream: answers as little as possible, so what is measured is the path to it.
export default {
  async fetch(): Promise<Response> {
    return new Response("ok");
  },
} satisfies ExportedHandler;
