/**
 * PaliGemma's task prompts and the prefix PaliGemmaProcessor builds around them. Pure: used by the engine,
 * the CLI and the extension alike.
 */

export type Task = 'caption' | 'describe' | 'ocr' | 'answer' | 'question' | 'detect' | 'segment';

export interface TaskRequest {
  task: Task;
  /** Language code for caption, describe, answer and question ("en", "fr", ...). */
  language?: string;
  /** The question for `answer`, the objects for `detect` ("cat ; dog") and `segment`. */
  text?: string;
}

/** The verbs the Describe panel and the CLI offer, and the task behind each (`ask` is PaliGemma's `answer`). */
export const VERB_TASKS = { caption: 'caption', describe: 'describe', ocr: 'ocr', ask: 'answer', detect: 'detect', segment: 'segment' } as const satisfies Record<string, Task>;

export type Verb = keyof typeof VERB_TASKS;

/** The request behind a verb: the language where the task takes one, the text where it needs one. */
export function requestForVerb(verb: Verb, language: string | undefined, text?: string): TaskRequest {
  const task = VERB_TASKS[verb];
  if (task === 'ocr') return { task };
  if (task === 'detect' || task === 'segment') return { task, text };
  return task === 'answer' ? { task, language, text } : { task, language };
}

/** The prompt text the model was trained on for each task (big_vision's PaliGemma prompt formats). */
export function taskPrompt(request: TaskRequest): string {
  const language = request.language?.trim() || 'en';
  const text = (request.text ?? '').replace(/\s+/g, ' ').trim();
  switch (request.task) {
    case 'caption':
      return `caption ${language}`;
    case 'describe':
      return `describe ${language}`;
    case 'ocr':
      return 'ocr';
    case 'question':
      return `question ${language}`;
    case 'answer':
      if (!text) throw new Error('answer needs a question');
      return `answer ${language} ${text}`;
    case 'detect': {
      const objects = normaliseObjectList(text);
      if (!objects) throw new Error('detect needs at least one object name');
      return `detect ${objects}`;
    }
    case 'segment': {
      const objects = normaliseObjectList(text);
      if (!objects) throw new Error('segment needs at least one object name');
      return `segment ${objects}`;
    }
  }
}

/** "cat;dog , bird" -> "cat ; dog ; bird": PaliGemma separates detection classes with " ; ". */
export function normaliseObjectList(text: string): string {
  return text
    .split(/[;,]/)
    .map((part) => part.trim())
    .filter(Boolean)
    .join(' ; ');
}
