import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type ParseOptions,
  parseDocument,
  type SchemaOptions,
  type Tags,
  visit,
} from 'yaml';
import type { ConfigIssue } from './errors.js';

/**
 * At most this many alias expansions when turning YAML into data: a real config uses a handful
 * (`<<: *defaults`), and "billion laughs" (aliases of aliases) would otherwise take gigabytes.
 */
export const maxAliasCount = 100;

export const quoteHint = 'quote a value that starts with one of # & ! * @ ` " \' | > % (\'#abc\' or "#abc")';

export interface ParsedYaml {
  doc: Document.Parsed;
  lineCounter: LineCounter;
  /** Syntax problems, unresolved aliases and bad merges, each at its line; empty when the doc is usable. */
  issues: ConfigIssue[];
}

/**
 * Parses YAML text with the checks that make it safe to turn into data: syntax errors and
 * warnings (an unknown `!tag` would otherwise become an empty value), aliases without an anchor,
 * and `<<` merges of something that is not a mapping. Messages never quote the text, because the
 * text may be a secret.
 */
export function parseYaml(
  text: string,
  file: string,
  options: { schema?: SchemaOptions['schema']; customTags?: Tags } = {},
): ParsedYaml {
  const lineCounter = new LineCounter();
  const parseOptions: ParseOptions & SchemaOptions = {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    merge: true,
    ...(options.schema ? { schema: options.schema } : {}),
    ...(options.customTags ? { customTags: options.customTags } : {}),
  };
  const doc = parseDocument(text, parseOptions);
  const issues: ConfigIssue[] = [];
  const at = (offset: number | undefined) => {
    if (offset === undefined) return { line: 0, col: 0 };
    const { line, col } = lineCounter.linePos(offset);
    return { line, col };
  };
  for (const e of [...doc.errors, ...doc.warnings]) {
    const pos = e.linePos?.[0] ?? at(e.pos[0]);
    // `{ token: ${HEARTH_TOKEN} }`: in a one-line mapping, YAML reads the braces of an unquoted
    // `${VAR}` as its own. Said once, with the fix, instead of a cascade of syntax errors.
    const lineText = text.split('\n')[pos.line - 1] ?? '';
    if (/[{[][^\n]*[:,[]\s*\$\{[A-Za-z_]/.test(lineText)) {
      issues.push({
        file,
        line: pos.line,
        col: lineText.indexOf('${') + 1,
        field: '',
        message:
          // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's ${VAR}, not a template
          'an unquoted ${VAR} inside a one-line { ... } or [ ... ]: YAML reads its braces as its own; quote it ("${VAR}") or put the key on its own line',
      });
      break;
    }
    issues.push({ file, ...pos, field: '', message: describeYamlError(e.code, e.message) });
  }
  if (issues.length > 0) return { doc, lineCounter, issues };

  // An alias without an anchor is reported once, as such, not again as a bad merge.
  const mergeable = (n: unknown): boolean => {
    if (!isAlias(n)) return isMap(n);
    const target = n.resolve(doc);
    return target === undefined || isMap(target);
  };
  visit(doc, {
    Alias(_key, node) {
      if (node.resolve(doc) === undefined) {
        issues.push({
          file,
          ...at(node.range?.[0]),
          field: '',
          message: `an alias (*name) with no anchor (&name) before it; ${quoteHint}`,
        });
      }
    },
    Pair(_key, pair) {
      if (!isMergeKey(pair.key)) return;
      const v = pair.value;
      const ok = isSeq(v) ? v.items.every(mergeable) : mergeable(v);
      if (!ok) {
        issues.push({
          file,
          ...at((v as Node | null)?.range?.[0] ?? (pair.key as Node).range?.[0]),
          field: '',
          message: '`<<` merges mappings only: write `<<: *name` where `&name` marks a mapping',
        });
      }
    },
  });
  return { doc, lineCounter, issues };
}

/** With `merge: true` the parser gives a `<<` key a symbol as its value. */
function isMergeKey(key: unknown): boolean {
  if (!isScalar(key)) return false;
  const v = key.value;
  return typeof v === 'symbol' ? v.description === '<<' : v === '<<' && key.type === 'PLAIN';
}

/** The document as plain data, or the reason it cannot be (too many alias expansions). */
export function toData(doc: Document, file: string): { value: unknown } | { issue: ConfigIssue } {
  try {
    return { value: doc.toJS({ maxAliasCount }) ?? {} };
  } catch (err) {
    const excessive = err instanceof Error && /alias count/i.test(err.message);
    return {
      issue: {
        file,
        line: 0,
        col: 0,
        field: '',
        message: excessive
          ? `its aliases (*name) expand to more than ${maxAliasCount} copies; write the values out, or use fewer nested aliases`
          : `cannot be turned into data (${err instanceof Error ? err.name : 'error'}); check its aliases (*name) and merges (<<)`,
      },
    };
  }
}

/**
 * The parser's message without the part after a colon, which quotes the source text (a tag, an
 * alias, a block scalar header): that text may be a token.
 */
function describeYamlError(code: string, message: string): string {
  const head = (message.split('\n')[0] ?? '').replace(/:\s.*$/, '');
  const quoting = ['BAD_SCALAR_START', 'MISSING_CHAR', 'TAG_RESOLVE_FAILED', 'UNEXPECTED_TOKEN', 'BAD_ALIAS'];
  return quoting.includes(code) ? `${head} (YAML syntax); ${quoteHint}` : `${head} (YAML syntax)`;
}
