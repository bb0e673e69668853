// Starts `flow lsp` (the setting flow.path names the binary) for .flow files. Highlighting,
// brackets and comments need none of this: package.json's grammar and configuration give them.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("flow").get("path") || "flow";
  client = new LanguageClient(
    "flow",
    "Flow",
    { command, args: ["lsp"] },
    { documentSelector: [{ scheme: "file", language: "flow" }] }
  );
  client.start();
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
