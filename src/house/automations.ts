import type { AutomationEngine, AutomationsApi, AutomationView, Launched } from '../automation/engine.js';
import { HearthError } from '../core/errors.js';
import type { AutomationRun } from '../store/store.js';
import type { HouseLink } from './link.js';

/**
 * Automations as an api service shows them. What they are and their history come from the
 * leading controller's engine when it runs in this process (with its runs under way), and
 * otherwise from the config and the shared store (an engine that is never started); "run now"
 * is a request over the link to the leading controller, which alone runs automations.
 */
export class AutomationsView implements AutomationsApi {
  readonly #config: AutomationEngine;
  readonly #link: HouseLink;
  readonly #live: () => AutomationEngine | undefined;

  constructor(opts: { config: AutomationEngine; link: HouseLink; live: () => AutomationEngine | undefined }) {
    this.#config = opts.config;
    this.#link = opts.link;
    this.#live = opts.live;
  }

  list(): Promise<AutomationView[]> {
    return this.#engine().list();
  }

  view(id: string): Promise<AutomationView | undefined> {
    return this.#engine().view(id);
  }

  runs(id: string, limit?: number): Promise<AutomationRun[]> {
    return this.#engine().runs(id, limit);
  }

  async trigger(id: string, trigger = 'webhook'): Promise<Launched> {
    if (!(await this.#config.view(id)))
      throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no automation "${id}"`);
    return this.#link.run({ automation: id, trigger });
  }

  #engine(): AutomationEngine {
    return this.#live() ?? this.#config;
  }
}
