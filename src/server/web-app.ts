import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HearthError } from '../core/errors.js';
import { statusRoute } from './access.js';

/*
 * The dashboard: a small Preact app (web/), built by scripts/build.mjs into dist/web: an
 * index.html and content-hashed files under assets/. The control listener serves it at `/` to
 * trusted clients (see app.ts); the files are read once, at start, and kept in memory (tens
 * of kB), each with its gzip.
 */

export const APP_ASSETS = '/app/assets';

const types: Readonly<Record<string, string>> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  map: 'application/json; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
  svg: 'image/svg+xml',
};

interface Asset {
  body: Buffer;
  gzip: Buffer | undefined;
  type: string;
}

/**
 * Headers of the app's page: only scripts and styles of this origin, requests only to it, no
 * framing by another site, forms only to this origin.
 */
export const appPageHeaders = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self' data:",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; '),
} as const;

const assetHeaders = {
  'cache-control': 'public, max-age=31536000, immutable',
  'x-content-type-options': 'nosniff',
} as const;

/** The built app, or undefined when there is none (a source checkout never built). */
export class WebApp {
  readonly index: Asset;
  readonly #assets: ReadonlyMap<string, Asset>;

  private constructor(index: Asset, assets: Map<string, Asset>) {
    this.index = index;
    this.#assets = assets;
  }

  /** Loads dist/web (next to the bundle, or ../../dist/web from src/server). */
  static load(dir: string | undefined = findAppDir()): WebApp | undefined {
    if (dir === undefined) return undefined;
    const read = (path: string, type: string): Asset => {
      const body = readFileSync(path);
      return { body, gzip: body.length > 1024 ? gzipSync(body) : undefined, type };
    };
    const assets = new Map<string, Asset>();
    for (const name of readdirSync(`${dir}/assets`)) {
      const ext = name.slice(name.lastIndexOf('.') + 1);
      const type = types[ext];
      if (type) assets.set(name, read(`${dir}/assets/${name}`, type));
    }
    return new WebApp(read(`${dir}/index.html`, appPageHeaders['content-type']), assets);
  }

  asset(name: string): Asset | undefined {
    return this.#assets.get(name);
  }
}

function findAppDir(): string | undefined {
  // Bundled: dist/hearth.mjs or dist/chunks/*.mjs. From source: src/server/web-app.ts.
  for (const rel of ['web', '../web', '../../dist/web']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(`${dir}/index.html`) && existsSync(`${dir}/assets`)) return dir;
  }
  return undefined;
}

/** Sends `asset`, gzipped when the client takes it. */
export function sendAsset(req: FastifyRequest, reply: FastifyReply, asset: Asset): FastifyReply {
  void reply.type(asset.type).header('vary', 'accept-encoding');
  const gzip = asset.gzip !== undefined && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  if (gzip) void reply.header('content-encoding', 'gzip');
  return reply.send(gzip ? asset.gzip : asset.body);
}

/** GET /app/assets/<file>: the app's content-hashed files, cached for a year. */
export function registerAppAssets(app: FastifyInstance, web: WebApp): void {
  app.get(`${APP_ASSETS}/:file`, statusRoute, async (req, reply) => {
    const { file } = req.params as { file: string };
    const asset = web.asset(file);
    if (!asset) throw new HearthError('HEARTH_ERR_NOT_FOUND', `no file "${file.slice(0, 100)}" in the app`);
    void reply.headers(assetHeaders);
    return sendAsset(req, reply, asset);
  });
}
