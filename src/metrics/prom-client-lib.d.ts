/*
 * prom-client's metric classes, each from its own file: its index also loads the default
 * metrics (with @opentelemetry/api), the summary (tdigest), the cluster aggregator and the
 * Pushgateway (http, https), which every start would then parse. The types are the index's.
 */
declare module 'prom-client/lib/registry.js' {
  import { Registry } from 'prom-client';
  export default Registry;
}
declare module 'prom-client/lib/counter.js' {
  import { Counter } from 'prom-client';
  export default Counter;
}
declare module 'prom-client/lib/gauge.js' {
  import { Gauge } from 'prom-client';
  export default Gauge;
}
declare module 'prom-client/lib/histogram.js' {
  import { Histogram } from 'prom-client';
  export default Histogram;
}
