// `node --import` this file to load modules through the import map in MOVAN_IMPORT_MAP (see importmap-hooks.js).
import { register } from 'node:module';

register('./importmap-hooks.js', import.meta.url, { data: JSON.parse(process.env.MOVAN_IMPORT_MAP ?? '{}') });
