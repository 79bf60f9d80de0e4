// Renders a chat template with @huggingface/jinja (the Jinja engine of transformers.js),
// as a test-only oracle for amalgam's built-in chat templates.
// stdin: {"template": "...", "messages": [...], "add_generation_prompt": bool,
//         "bos_token": "...", "eos_token": "..."}; stdout: the rendered text.
import { Template } from "@huggingface/jinja";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { template, ...context } = JSON.parse(input);
process.stdout.write(new Template(template).render(context));
