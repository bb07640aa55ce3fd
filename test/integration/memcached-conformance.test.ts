import type memjs from "memjs";
import { createMemcachedClient, MemcachedStore } from "../../adapters/memcached.js";
import { runStoreConformance } from "../../src/testing/conformance.js";
import { services, uniquePrefix } from "../services/index.js";
import { ttlOnServers } from "../helpers/memcached-servers.js";

const clients = new WeakMap<MemcachedStore, memjs.Client>();

function suite(label: string, addresses: () => string[], getAndTouch: boolean, compareAndSet = true): void {
  runStoreConformance<MemcachedStore>({
    name: `MemcachedStore (${label}, getAndTouch: ${getAndTouch}${compareAndSet ? "" : ", compareAndSet: false"})`,
    createStore: () => {
      const client = createMemcachedClient(addresses());
      const store = new MemcachedStore({ client, prefix: uniquePrefix(`memcached-conformance-${label}`), getAndTouch, compareAndSet });
      clients.set(store, client);
      return store;
    },
    // Read from the servers themselves (`mg <key> t`), whichever of them holds the key.
    ttlOf: (store, id) => ttlOnServers(addresses(), store.prefix + id),
    dispose: async (store) => clients.get(store)?.close(),
  });
}

const one = () => services().memcached.servers.map((server) => server.address);
const three = () => services().memcachedMulti.servers.map((server) => server.address);

suite("1 server", one, true);
suite("1 server", one, false);
suite("3 servers", three, true);
suite("3 servers", three, false);
// Plain replace for writes: the suite checks that compare-and-set is then neither declared nor present.
suite("1 server", one, true, false);
