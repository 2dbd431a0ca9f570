#!/usr/bin/env node
// The `edgemesh` command: runs scripts/cli.ts through tsx's loader.
import { register } from "tsx/esm/api";

register();
await import("../scripts/cli.ts");
