import { BlockList, isIP } from 'node:net';
import { parseCidr } from '../config/cidr.js';

const mappedV4 = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

/**
 * The networks whose clients may use control routes (`http.allow`). A client on a dual-stack
 * socket shows up as `::ffff:192.168.1.5`; it is matched as the IPv4 address it is.
 */
export class AllowList {
  readonly #networks = new BlockList();

  /** Throws on a network that is not CIDR; the config schema has already said where. */
  constructor(cidrs: readonly string[]) {
    for (const text of cidrs) {
      const net = parseCidr(text);
      if (!net) throw new Error(`"${text}" is not a network in CIDR notation`);
      this.#networks.addSubnet(net.address, net.prefix, net.family);
    }
  }

  /** True if `address` (a socket's remote address) is in one of the networks. */
  allows(address: string | undefined): boolean {
    if (!address) return false;
    // A link-local client carries its interface: fe80::1%eth0.
    let ip = address.split('%')[0] ?? '';
    ip = mappedV4.exec(ip)?.[1] ?? ip;
    const version = isIP(ip);
    if (version === 0) return false;
    return this.#networks.check(ip, version === 4 ? 'ipv4' : 'ipv6');
  }
}
