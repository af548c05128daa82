export { borderedTable, displayWidth, tabwriterTable } from './text-table.ts';
