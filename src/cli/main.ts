/**
 * The `deflow` command-line tool: `deno task deflow <command>` or
 * `deno run -A src/cli/main.ts <command>`.
 *
 * Commands: `train`, `degrade`, `restore`, `info`, `evaluate`; `--help` on each. Errors
 * print one line on stderr (`deflow: …`) and exit with code 1, or 2 for a bad command
 * line; an interrupted `train` (Ctrl-C, or SIGTERM) writes a checkpoint and exits with 130
 * (143 for SIGTERM).
 *
 * @module
 */
import { CliError, commandHelp, type CommandSpec, parseCommand, UsageError } from "./args.ts";
import {
  degradeSpec,
  type EvaluateArgs,
  evaluateSpec,
  type InfoArgs,
  infoSpec,
  restoreSpec,
  runEvaluate,
  runInfo,
  runSample,
  runTrain,
  type SampleArgs,
  type TrainArgs,
  trainSpec,
} from "./commands.ts";
import { withResolvedModel } from "../io/builtin.ts";

interface Command {
  readonly spec: CommandSpec;
  readonly run: (values: unknown) => Promise<number>;
}

const commands: readonly Command[] = [
  { spec: trainSpec, run: (v) => runTrain(v as TrainArgs) },
  { spec: degradeSpec, run: (v) => runSample(v as SampleArgs, "degrade") },
  { spec: restoreSpec, run: (v) => runSample(v as SampleArgs, "restore") },
  { spec: infoSpec, run: (v) => runInfo(v as InfoArgs) },
  { spec: evaluateSpec, run: (v) => runEvaluate(v as EvaluateArgs) },
];

/** The top-level help text. */
export const topHelp = (): string => {
  const w = Math.max(...commands.map((c) => c.spec.name.length));
  return [
    "deflow — learn image degradations from unpaired clean/degraded photos (DeFlow)",
    "",
    "usage: deflow <command> [options]     (deflow <command> --help for its options)",
    "",
    "commands:",
    ...commands.map((c) => `  ${c.spec.name.padEnd(w)}  ${c.spec.summary}`),
    "",
    "Errors print one line on stderr; exit code 1 (2 for a bad command line).",
  ].join("\n");
};

const debug = (): boolean => {
  try {
    return Deno.env.get("DEFLOW_DEBUG") !== undefined;
  } catch {
    return false;
  }
};

const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, "; ").trim();

/**
 * Run the CLI on `args` (without the program name) and return the exit code. Never
 * throws: errors are printed as one line on stderr.
 */
export const main = async (args: readonly string[]): Promise<number> => {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(topHelp());
    return name === undefined ? 2 : 0;
  }
  const cmd = commands.find((c) => c.spec.name === name);
  try {
    if (!cmd) {
      throw new UsageError(
        `unknown command "${name}" (expected ${commands.map((c) => c.spec.name).join(", ")})`,
      );
    }
    const parsed = parseCommand<unknown>(cmd.spec, rest);
    if (parsed.help) {
      console.log(commandHelp(cmd.spec));
      return 0;
    }
    return await cmd.run(await withResolvedModel(parsed.values)); // --model builtin:NAME
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (e instanceof UsageError) {
      console.error(`deflow: ${oneLine(msg)} (see deflow ${cmd ? `${name} ` : ""}--help)`);
      return 2;
    }
    console.error(`deflow: ${oneLine(msg)}`);
    if (!(e instanceof CliError) && debug()) console.error(e);
    return 1;
  }
};

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}
