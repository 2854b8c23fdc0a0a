// Builds the dashboard into dist/ (embedded by the hub's build.rs, or served with --web-dir).
// `npm run dev` proxies the API to a hub on FAULTLINE_HUB (default https://127.0.0.1:8443).
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { searchForWorkspaceRoot } from 'vite';
import { defineConfig, type Plugin } from 'vitest/config';
import react from '@vitejs/plugin-react';

const hub = process.env.FAULTLINE_HUB ?? 'https://127.0.0.1:8443';

/**
 * GraphiQL for the hub's `/graphql` page (server/src/graphiql.html), copied from npm packages
 * into dist/graphiql/ beside public/graphiql/start.js: the hub serves it itself, so it works on a
 * closed network. Not part of the app's bundle; React 18's UMD build because GraphiQL 3 (the
 * last with a UMD build) expects it as a global.
 */
function vendorGraphiql(): Plugin {
  const modules = fileURLToPath(new URL('./node_modules/', import.meta.url));
  const files: [string, string][] = [
    ['graphiql/graphiql.min.js', 'graphiql.min.js'],
    ['graphiql/graphiql.min.css', 'graphiql.min.css'],
    ['react-18/umd/react.production.min.js', 'react.production.min.js'],
    ['react-dom-18/umd/react-dom.production.min.js', 'react-dom.production.min.js'],
  ];
  return {
    name: 'faultline-vendor-graphiql',
    apply: 'build',
    writeBundle(options) {
      const out = join(options.dir ?? 'dist', 'graphiql');
      mkdirSync(out, { recursive: true });
      for (const [from, to] of files) copyFileSync(join(modules, from), join(out, to));
    },
  };
}

export default defineConfig({
  plugins: [react(), vendorGraphiql()],
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 700,
    rollupOptions: {
      output: {
        // The editor is only needed on the template pages: its own chunk, loaded on demand.
        manualChunks(id: string) {
          if (id.includes('node_modules/@codemirror') || id.includes('node_modules/@lezer') || id.includes('node_modules/codemirror')) return 'editor';
          if (id.includes('node_modules/uplot')) return 'chart';
          return undefined;
        },
      },
    },
  },
  server: {
    // The editor imports the template's JSON Schema from docs/, outside web/.
    fs: { allow: [searchForWorkspaceRoot(process.cwd()), fileURLToPath(new URL('../docs/template.schema.json', import.meta.url))] },
    proxy: {
      '/graphql': { target: hub, secure: false, ws: true },
      '/auth': { target: hub, secure: false },
      // The run report (the hub renders it): only that path, the app owns the others.
      '^/runs/[^/]+/report': { target: hub, secure: false },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test-setup.ts'],
  },
});
