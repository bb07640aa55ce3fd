import http from "node:http";

export interface ObservedResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface ObservedRequest {
  /** `true` once the response head has reached the client. */
  readonly headArrived: boolean;
  /** The whole response; rejects if the connection is cut before it ends. */
  readonly done: Promise<ObservedResponse>;
}

/**
 * An HTTP request whose progress a test can watch: whether the head has arrived yet, then the
 * whole response. (fetch only tells once the head is there.)
 */
export function observedRequest(url: string, init: { method?: string; cookie?: string } = {}): ObservedRequest {
  let headArrived = false;
  const done = new Promise<ObservedResponse>((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? "GET", headers: init.cookie ? { cookie: init.cookie } : {}, agent: false }, (res) => {
      headArrived = true;
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        if (!res.complete) reject(new Error("response cut short"));
        else resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() });
      });
      res.on("error", reject);
      res.on("aborted", () => reject(new Error("response aborted")));
    });
    req.on("error", reject);
    req.end();
  });
  return {
    get headArrived() {
      return headArrived;
    },
    done,
  };
}

/** Give a wrongly sent head time to reach the client on the loopback interface. */
export function settle(ms = 50): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
