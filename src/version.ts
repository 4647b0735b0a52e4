/** hearth's version, as package.json says (test/version.test.ts keeps the two equal). */
export const hearthVersion = '0.2.0-dev';

declare const __HEARTH_REVISION__: string | undefined;
/**
 * The git commit the running build was made from: scripts/build.mjs writes it into dist/ (from
 * $HEARTH_REVISION, as the image's build passes it, else `git rev-parse HEAD`, with `-dirty`
 * when the tree had changes), `unknown` where neither could say, `source` when run from the
 * TypeScript sources (tests, tsx).
 */
export const hearthRevision = typeof __HEARTH_REVISION__ === 'string' ? __HEARTH_REVISION__ : 'source';

/** The project's page, as package.json's `homepage` says (test/version.test.ts keeps the two equal). */
export const hearthHomepage = 'https://github.com/hearth-home/hearth';
