/**
 * The scripted ADS server of `@ambient-mesh/xds/testing` at an `http://` address, as ztunnel's
 * `XDS_ADDRESS` takes it. It records every request and lets the test push responses or drop
 * the stream.
 */
import { TestAdsServer } from '@ambient-mesh/xds/testing';

export class TestDeltaXdsServer extends TestAdsServer {
  /** Binds loopback; returns `http://127.0.0.1:<port>`. */
  override async start(): Promise<string> {
    return `http://${await super.start()}`;
  }
}
