// ESLint for the sources, tests and scripts (typescript-eslint's recommended rules); Prettier owns formatting.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'out/', 'out-*/', '.vscode-test/', 'test-results/', 'bench/', 'media/*.js', 'test/clients/programs/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // `import x = require('…')` is how CommonJS-only modules (mocha, package.json) are typed.
      '@typescript-eslint/no-require-imports': ['error', { allowAsImport: true }],
    },
  },
  // Bench helpers that run as plain CommonJS children.
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs' }, rules: { '@typescript-eslint/no-require-imports': 'off' } },
  // Code that runs in a browser page: the webview script and what Playwright evaluates in the workbench.
  { files: ['src/webview/**/*.ts', 'test/e2e/**/*.ts', 'scripts/vscode-host/**/*.mjs'], languageOptions: { globals: { ...globals.browser } } },
  // Tests read untyped JSON from the wire; the support code (the fake Poe, the harnesses) is typed.
  { files: ['test/**/*.ts'], ignores: ['test/support/**'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
);
