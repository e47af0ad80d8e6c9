import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The build is served by nginx at the site root; the API is reached through nginx's
// /api/ location (relative URLs), so the page needs no knowledge of any host name.
export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true },
  server: { proxy: { '/api': { target: 'http://localhost:4000', rewrite: (p) => p.replace(/^\/api/, '') } } },
});
