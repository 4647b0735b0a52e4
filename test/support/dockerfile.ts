// Just enough of the Dockerfile and .dockerignore formats to check hearth's own files
// (test/image.test.ts): instructions with their line, stages, and which context paths are sent.

export interface Instruction {
  /** Upper case: FROM, RUN, COPY... */
  keyword: string;
  /** Everything after the keyword, continuation lines joined with a space. */
  args: string;
  /** 1-based line of the keyword in the file. */
  line: number;
}

export interface Stage {
  /** The FROM instruction's image (as written, ${ARG}s not expanded). */
  from: string;
  /** The `AS name`, if any. */
  name: string | undefined;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM (name -> default). */
  globalArgs: Map<string, string>;
  stages: Stage[];
}

/** Parses a Dockerfile: comments and parser directives dropped, `\` continuations joined. */
export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let current: Instruction | undefined;
  let continued = false;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    // A comment line inside a continued instruction is dropped too, as Docker does.
    if (line.startsWith('#')) return;
    if (!continued) {
      if (line === '') return;
      const m = /^(\S+)\s*(.*)$/.exec(line);
      if (!m?.[1]) return;
      current = { keyword: m[1].toUpperCase(), args: m[2] ?? '', line: i + 1 };
      instructions.push(current);
    } else if (current && line !== '') {
      current.args += ` ${line}`;
    }
    continued = line.endsWith('\\');
    if (continued && current) current.args = current.args.replace(/\\$/, '').trimEnd();
  });
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      stages.push({ from: m?.[1] ?? ins.args, name: m?.[2], instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword === 'ARG') {
        const [name, ...value] = ins.args.split('=');
        globalArgs.set(name?.trim() ?? '', value.join('=').replace(/^"(.*)"$/, '$1'));
      }
    } else {
      stages.at(-1)?.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

export interface Copy {
  /** The stage it copies from (`--from=`), or undefined: the build context. */
  from: string | undefined;
  sources: string[];
  dest: string;
  line: number;
}

/** The COPY instructions of a stage, shell form (`COPY [--flag...] src... dest`). */
export function copiesOf(stage: Stage): Copy[] {
  return stage.instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      const flags = words.filter((w) => w.startsWith('--'));
      const paths = words.filter((w) => !w.startsWith('--'));
      const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
      return { from, sources: paths.slice(0, -1), dest: paths.at(-1) ?? '', line: i.line };
    });
}

/** The JSON array of an exec-form instruction (ENTRYPOINT, CMD, HEALTHCHECK ... CMD). */
export function execForm(args: string): string[] | undefined {
  const at = args.indexOf('[');
  if (at < 0) return undefined;
  try {
    const parsed: unknown = JSON.parse(args.slice(at));
    return Array.isArray(parsed) && parsed.every((w) => typeof w === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** `KEY=value KEY2="value 2"` (LABEL, ENV) as a map; quotes removed. */
export function keyValues(args: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of args.matchAll(/([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const [, key, value] = m;
    if (key) out.set(key, (value ?? '').replace(/^"(.*)"$/, '$1'));
  }
  return out;
}

/**
 * .dockerignore as Docker reads it: patterns in order, `!` re-includes, the last pattern that
 * matches a path or one of its parent folders decides. Returns whether `path` (relative, with
 * `/`) is sent to the builder.
 */
export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const exclude = !l.startsWith('!');
      const pattern = (exclude ? l : l.slice(1)).replace(/^\/+/, '').replace(/\/+$/, '');
      return { exclude, re: globToRegExp(pattern) };
    });
  return (path) => {
    const parts = path.split('/');
    let excluded = false;
    for (const rule of rules) {
      for (let n = 1; n <= parts.length; n++) {
        if (rule.re.test(parts.slice(0, n).join('/'))) {
          excluded = rule.exclude;
          break;
        }
      }
    }
    return !excluded;
  };
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` matches any number of folders, none included.
      if (glob[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i += 1;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
