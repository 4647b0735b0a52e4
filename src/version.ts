/** hearth's version, as package.json says (test/version.test.ts keeps the two equal). */
export const hearthVersion = '0.1.0';
