/** hearth's version, as package.json says (test/version.test.ts keeps the two equal). */
export const hearthVersion = '0.1.0';

/** The project's page, as package.json's `homepage` says (test/version.test.ts keeps the two equal). */
export const hearthHomepage = 'https://github.com/hearth-home/hearth';
