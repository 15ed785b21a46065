/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Django serves the built files with WhiteNoise under STATIC_URL, so asset URLs start with /static/.
export default defineConfig({
  base: "/static/",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true },
  // `npm run dev` talks to the Django server started by `./dev run`.
  server: { proxy: { "/api": "http://127.0.0.1:8000", "/admin": "http://127.0.0.1:8000" } },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
