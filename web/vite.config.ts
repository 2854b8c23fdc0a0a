// Builds the dashboard into dist/ (embedded by the hub's build.rs, or served with --web-dir).
// `npm run dev` proxies the API to a hub on FAULTLINE_HUB (default https://127.0.0.1:8443).
import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

const hub = process.env.FAULTLINE_HUB ?? 'https://127.0.0.1:8443';

export default defineConfig({
  plugins: [react()],
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
    proxy: {
      '/graphql': { target: hub, secure: false, ws: true },
      '/auth': { target: hub, secure: false },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test-setup.ts'],
  },
});
