#!/usr/bin/env node
import { runAndExit } from './entry.js';

runAndExit(process.argv);
