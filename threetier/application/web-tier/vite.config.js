import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The build is served by nginx at the site root; the API is reached through nginx's
// /api/ location (relative URLs), so the page needs no knowledge of any host name.
//
// dist/ is committed and shipped inside the Python package: the web builder copies it and
// builds nothing. It must therefore be a pure function of the sources and the lockfile
// (content-hashed names, no source maps, no manifest, no timestamps, no absolute paths),
// built with NODE_ENV=production (`npm run build` sets it: a stray NODE_ENV=development
// changes the output). tests/application/test_web_bundle.py rebuilds it and compares.
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    manifest: false,
    reportCompressedSize: false,
  },
  server: { proxy: { '/api': { target: 'http://localhost:4000', rewrite: (p) => p.replace(/^\/api/, '') } } },
});
