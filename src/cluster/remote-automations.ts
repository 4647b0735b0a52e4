import type { AutomationEngine, AutomationView, Launched } from '../automation/engine.js';
import { HearthError } from '../core/errors.js';
import type { AutomationRun } from '../store/store.js';

/**
 * Automations as an api replica shows them: what they are and their history come from the
 * config and the shared store (an engine that is never started), and "run now" is a request to
 * the leading controller, which alone runs automations.
 */
export class RemoteAutomations {
  readonly #views: AutomationEngine;
  readonly #run: (automation: string, trigger: string) => Promise<Launched>;

  constructor(views: AutomationEngine, run: (automation: string, trigger: string) => Promise<Launched>) {
    this.#views = views;
    this.#run = run;
  }

  list(): Promise<AutomationView[]> {
    return this.#views.list();
  }

  view(id: string): Promise<AutomationView | undefined> {
    return this.#views.view(id);
  }

  runs(id: string, limit?: number): Promise<AutomationRun[]> {
    return this.#views.runs(id, limit);
  }

  async trigger(id: string, trigger = 'webhook'): Promise<Launched> {
    if (!(await this.#views.view(id)))
      throw new HearthError('HEARTH_ERR_ENTITY_NOT_FOUND', `no automation "${id}"`);
    return this.#run(id, trigger);
  }
}
