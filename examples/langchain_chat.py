"""LangChain: the classic "VectorStoreRetrieverMemory + ConversationChain on Chroma", rebuilt.

Today's LangChain keeps the conversation in a chat history (RunnableWithMessageHistory) and
fetches long-term memories with a retriever; engramdb is both. The model here is the scripted
OpenAI-compatible server from engramdb.testing, so the example runs offline; point
ChatOpenAI at any real endpoint instead.
"""

import tempfile
import warnings
from pathlib import Path

from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnablePassthrough
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_openai import ChatOpenAI

from engramdb import Memory
from engramdb.integrations.langchain import EngramChatMessageHistory, EngramRetriever
from engramdb.testing import Reply, ScriptedOpenAIServer

warnings.filterwarnings("ignore", message="RunnableWithMessageHistory is deprecated")

with tempfile.TemporaryDirectory() as tmp, Memory(f"sqlite:///{Path(tmp) / 'chat.db'}") as memory, \
        ScriptedOpenAIServer() as llm:  # fmt: skip
    llm.script(Reply(content="Nice to meet you, Alice! Lisbon is lovely."),
               Reply(content="Since you're vegetarian, try the grilled halloumi."))  # fmt: skip
    model = ChatOpenAI(base_url=llm.base_url, api_key="not-needed", model="any")
    # threshold 0: every turn gets the closest memories, even in words the user never said ("order" → "vegetarian")
    retriever = EngramRetriever(memory=memory, user_id="alice", k=3, search_options={"threshold": 0})
    prompt = ChatPromptTemplate.from_messages([
        ("system", "You are a helpful assistant. What you remember about the user:\n{memories}"),
        MessagesPlaceholder("history"),
        ("human", "{input}"),
    ])  # fmt: skip
    recall = RunnablePassthrough.assign(
        memories=lambda x: "\n".join(d.page_content for d in retriever.invoke(x["input"]))
    )
    chat = RunnableWithMessageHistory(
        recall | prompt | model,
        lambda session_id: EngramChatMessageHistory(memory, session_id, user_id="alice"),
        input_messages_key="input",
        history_messages_key="history",
    )
    config = {"configurable": {"session_id": "dinner-plans"}}
    for said in ("Hi, I'm Alice. I live in Lisbon and I'm vegetarian.", "What should I order tonight?"):
        print(f"user: {said}")
        print(f"assistant: {chat.invoke({'input': said}, config=config).content}")
    print("\nremembered about alice:")
    for doc in retriever.invoke("diet", k=5):
        print(f"  [{doc.metadata['kind']}] {doc.page_content}")
    prompt_sent = llm.requests[-1]["body"]["messages"][0]["content"]
    assert "vegetarian" in prompt_sent, prompt_sent
